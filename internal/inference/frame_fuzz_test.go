package inference

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// frame builds the wire bytes of one frame.
func frame(header, body []byte) []byte {
	var b bytes.Buffer
	if _, err := writeFrame(&b, nil, header, body); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// declared returns the header and body lengths readFrame will see in data.
func declared(data []byte) (h, b uint64) {
	if len(data) >= 4 {
		h = uint64(binary.BigEndian.Uint32(data))
	}
	if uint64(len(data)) >= 8+h {
		b = uint64(binary.BigEndian.Uint32(data[4+h:]))
	}
	return h, b
}

// FuzzReadFrame feeds arbitrary bytes to readFrame: it never panics, allocates in
// proportion to the bytes that arrive (a declared length alone, up to 4 GiB, allocates
// nothing beyond the limits), and on success returns exactly the declared body.
func FuzzReadFrame(f *testing.F) {
	f.Add(frame([]byte(`{"s":200,"h":[["Content-Type","application/json"]],"ms":1.5}`), []byte(`{"ok":true}`)))
	f.Add(frame([]byte(`{"ready":true,"pid":42,"hdr":true,"schema":{"input":{},"output":null}}`), nil))
	f.Add(frame([]byte(`{"code":"UserScriptInitFailed","message":"boom","failed":true}`), []byte("traceback")))
	f.Add(frame([]byte(`{}`), []byte("x"))[:9]) // body cut short
	f.Add(frame([]byte(`{"s":"200"}`), nil))    // wrong type in the header
	f.Add(frame([]byte(`not json`), nil))
	f.Add(frame(nil, nil))
	f.Add([]byte{0, 0})
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, '{', '}'})                               // a 4 GiB header declared
	f.Add(append([]byte{0, 0, 0, 2, '{', '}'}, 0x7f, 0xff, 0xff, 0xff, 'x', 'y')) // a 2 GiB body declared
	f.Add(append(frame([]byte(`{"s":204}`), nil), frame([]byte(`{"s":200}`), []byte("second"))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, b := declared(data)
		r := bufio.NewReader(bytes.NewReader(data))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, body, err := readFrame(r)
		runtime.ReadMemStats(&after)
		// The header and body buffers (at most what arrived, or the preallocated size),
		// what json.Unmarshal builds from the header, and some slack for the runtime.
		arrived := uint64(len(data))
		limit := 2*min(b, arrived) + preallocBody + 4*min(h, arrived) + 64<<10
		if got := after.TotalAlloc - before.TotalAlloc; got > limit {
			t.Fatalf("readFrame allocated %d bytes for a frame declaring %d+%d (limit %d)", got, h, b, limit)
		}
		if err != nil {
			if body != nil {
				t.Fatalf("error %v with a body of %d bytes", err, len(body))
			}
			return
		}
		if want := data[8+h : 8+h+b]; !bytes.Equal(body, want) {
			t.Fatalf("body %q, want the declared %d bytes %q", body, b, want)
		}
	})
}

// FuzzFrameRoundTrip writes two frames with writeFrame, sharing one scratch buffer as
// the pool does, and reads them back identically with readFrame.
func FuzzFrameRoundTrip(f *testing.F) {
	f.Add(200, "Content-Type", "application/json", "", []byte(`{"ok":true}`), []byte("second"))
	f.Add(0, "", "", "UserScriptInitFailed", []byte(nil), []byte(nil))
	f.Add(500, "x-ms-run-function-failed", "True", "run() raised: \"boom\"\n\tat line 3", []byte{0, 1, 2, 0xff}, []byte("é"))
	f.Fuzz(func(t *testing.T, status int, hk, hv, msg string, body1, body2 []byte) {
		// JSON carries text only as valid UTF-8; the worker sends nothing else.
		hk, hv, msg = strings.ToValidUTF8(hk, "?"), strings.ToValidUTF8(hv, "?"), strings.ToValidUTF8(msg, "?")
		ready := status%2 == 0
		first := frameHeader{Status: status, Headers: [][2]string{{hk, hv}}, Message: msg, Ms: 1.25}
		second := frameHeader{Ready: &ready, Code: msg, PID: status, Failed: true,
			Schema: &swaggerSchemas{Input: json.RawMessage(`{"type":"object"}`), Output: json.RawMessage(`null`)}}
		var wire bytes.Buffer
		var scratch []byte
		for _, fr := range []struct {
			h    frameHeader
			body []byte
		}{{first, body1}, {second, body2}} {
			hb, err := json.Marshal(fr.h)
			if err != nil {
				t.Fatal(err)
			}
			if scratch, err = writeFrame(&wire, scratch, hb, fr.body); err != nil {
				t.Fatal(err)
			}
		}
		r := bufio.NewReader(&wire)
		for i, want := range []struct {
			h    frameHeader
			body []byte
		}{{first, body1}, {second, body2}} {
			h, body, err := readFrame(r)
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			if diff := cmp.Diff(want.h, h); diff != "" {
				t.Fatalf("frame %d header (-written +read):\n%s", i, diff)
			}
			if !bytes.Equal(body, want.body) {
				t.Fatalf("frame %d body %q, want %q", i, body, want.body)
			}
		}
		if _, _, err := readFrame(r); !errors.Is(err, io.EOF) {
			t.Fatalf("after the last frame: %v, want io.EOF", err)
		}
	})
}

// TestParseJSONOK: the fast path reads the worker's common answer header exactly as
// encoding/json does, and leaves every other header to encoding/json.
func TestParseJSONOK(t *testing.T) {
	for _, in := range []string{
		`{"s":200,"h":[["Content-Type","application/json"]],"ms":0.125}`,
		`{"s":200,"h":[["Content-Type","application/json"]],"ms":12}`,
	} {
		var fast, slow frameHeader
		if !fast.parseJSONOK([]byte(in)) {
			t.Fatalf("%s: not taken by the fast path", in)
		}
		if err := json.Unmarshal([]byte(in), &slow); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(slow, fast); d != "" {
			t.Errorf("%s: fast path differs from encoding/json (-json +fast):\n%s", in, d)
		}
	}
	for _, in := range []string{
		`{"s":200,"h":[["Content-Type","application/json"]],"ms":1,"failed":true}`,
		`{"s":200,"h":[["Content-Type","application/json"]],"ms":}`,
		`{"s":500,"h":[],"ms":1}`,
		`{"s":200,"h":[["Content-Type","application/json"]],"ms":1`,
	} {
		var h frameHeader
		if h.parseJSONOK([]byte(in)) {
			t.Errorf("%s: taken by the fast path", in)
		}
	}
}

// FuzzRequestHeaderEncode: the request header the worker reads is what encoding/json
// writes, whichever path encode takes.
func FuzzRequestHeaderEncode(f *testing.F) {
	f.Add("3f1c-aa", "POST", "", int64(0), false, false)
	f.Add("id", "GET", "a=1&b=<2>", int64(5000), true, false)
	f.Add("é\"\\\n", "POST", "x=%20", int64(-1), false, true)
	f.Fuzz(func(t *testing.T, id, method, query string, timeout int64, collect, headers bool) {
		h := requestHeader{ID: id, Method: method, Query: query, TimeoutMs: timeout, Collect: collect}
		if headers {
			h.Headers, h.Remote = map[string]string{"Accept": "*/*"}, "127.0.0.1"
		}
		want, err := json.Marshal(&h)
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("encode() = %s, encoding/json writes %s", got, want)
		}
	})
}
