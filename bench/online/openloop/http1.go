package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strconv"
)

// errBadResponse reports an answer this generator cannot read as HTTP/1.1.
var errBadResponse = errors.New("bad HTTP/1.1 response")

// buildRequest renders the one request every send repeats, as bytes ready to write: a
// keep-alive HTTP/1.1 POST of body to u, with the key as a bearer token when set.
func buildRequest(u *url.URL, body []byte, key string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n", u.RequestURI(), u.Host)
	if key != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", key)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	return b.Bytes()
}

// response is what the generator needs of one answer.
type response struct {
	size   int  // bytes the whole response takes in the buffer
	status int  // status code
	closes bool // the server closes the connection after it (Connection: close)
}

// parseResponse reads one HTTP/1.1 response from the start of buf: its size is 0 while
// buf does not hold it whole yet. Bodies are delimited by Content-Length or chunked
// encoding; 1xx, 204 and 304 answers have none.
func parseResponse(buf []byte) (response, error) {
	var r response
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return r, nil
	}
	lines := bytes.Split(buf[:end], []byte("\r\n"))
	status := bytes.Fields(lines[0])
	if len(status) < 2 || !bytes.HasPrefix(status[0], []byte("HTTP/1.")) {
		return r, fmt.Errorf("%w: status line %q", errBadResponse, lines[0])
	}
	code, err := strconv.Atoi(string(status[1]))
	if err != nil {
		return r, fmt.Errorf("%w: status line %q", errBadResponse, lines[0])
	}
	r.status = code
	length, chunked := -1, false
	for _, line := range lines[1:] {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return r, fmt.Errorf("%w: header line %q", errBadResponse, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return r, fmt.Errorf("%w: Content-Length %q", errBadResponse, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			r.closes = bytes.EqualFold(value, []byte("close"))
		}
	}
	head := end + 4
	switch {
	case code < 200 || code == 204 || code == 304:
		r.size = head
	case chunked:
		n, err := chunkedSize(buf[head:])
		if n > 0 {
			r.size = head + n
		}
		return r, err
	case length >= 0:
		if len(buf) >= head+length {
			r.size = head + length
		}
	default:
		return r, fmt.Errorf("%w: status %d has neither Content-Length nor chunked encoding", errBadResponse, code)
	}
	return r, nil
}

// chunkedSize is the size of the chunked body at the start of buf, trailers included,
// or 0 while buf does not hold it whole.
func chunkedSize(buf []byte) (int, error) {
	at := 0
	for {
		eol := bytes.Index(buf[at:], []byte("\r\n"))
		if eol < 0 {
			return 0, nil
		}
		sizeField, _, _ := bytes.Cut(buf[at:at+eol], []byte(";"))
		size, err := strconv.ParseInt(string(bytes.TrimSpace(sizeField)), 16, 64)
		if err != nil || size < 0 {
			return 0, fmt.Errorf("%w: chunk size %q", errBadResponse, buf[at:at+eol])
		}
		at += eol + 2
		if size == 0 {
			// Trailers, if any, end with an empty line.
			if bytes.HasPrefix(buf[at:], []byte("\r\n")) {
				return at + 2, nil
			}
			if end := bytes.Index(buf[at:], []byte("\r\n\r\n")); end >= 0 {
				return at + end + 4, nil
			}
			return 0, nil
		}
		if int64(len(buf)-at) < size+2 {
			return 0, nil
		}
		at += int(size) + 2
	}
}
