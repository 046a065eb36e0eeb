// untar reads a tar stream (ustar names, PAX path records) into [{name, data}] of its
// regular files.
export function untar(buf) {
  const out = [];
  const text = (a, b) => new TextDecoder().decode(buf.subarray(a, b)).replace(/\0.*$/s, '');
  let off = 0, paxPath = '';
  while (off + 512 <= buf.length) {
    if (buf.subarray(off, off + 512).every(b => b === 0)) break;
    const size = parseInt(text(off + 124, off + 136).trim() || '0', 8);
    const type = String.fromCharCode(buf[off + 156] || 48);
    const prefix = text(off + 345, off + 500);
    let name = text(off, off + 100);
    if (prefix) name = prefix + '/' + name;
    const data = buf.subarray(off + 512, off + 512 + size);
    if (type === 'x') {
      const m = new TextDecoder().decode(data).match(/\d+ path=([^\n]*)\n/);
      if (m) paxPath = m[1];
    } else {
      if (paxPath) { name = paxPath; paxPath = ''; }
      if (type === '0' || type === '\0') out.push({ name, data });
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}
