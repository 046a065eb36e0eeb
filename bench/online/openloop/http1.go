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
	size   int  // bytes the whole response takes in the buffer, interim 1xx answers included
	status int  // status code of the final answer
	closes bool // the server closes the connection after it
}

// head is one answer's status line and headers.
type head struct {
	size    int // bytes up to and including the empty line
	status  int
	length  int // Content-Length, -1 when absent
	chunked bool
	closes  bool
}

// parseResponse reads one HTTP/1.1 response from the start of buf: its size is 0 while
// buf does not hold it whole yet. Interim answers (1xx but 101) before the final one are
// part of it. Bodies are delimited by Content-Length or chunked encoding; 1xx, 204 and
// 304 answers have none.
func parseResponse(buf []byte) (response, error) {
	at := 0
	for {
		h, err := parseHead(buf[at:])
		if err != nil || h.size == 0 {
			return response{status: h.status}, err
		}
		at += h.size
		r := response{status: h.status, closes: h.closes}
		switch {
		case h.status >= 100 && h.status < 200 && h.status != 101:
			continue // the final answer follows
		case h.status < 200 || h.status == 204 || h.status == 304:
			r.size = at
		case h.chunked:
			n, err := chunkedSize(buf[at:])
			if n > 0 {
				r.size = at + n
			}
			return r, err
		case h.length >= 0:
			if len(buf)-at >= h.length {
				r.size = at + h.length
			}
		default:
			return r, fmt.Errorf("%w: status %d has neither Content-Length nor chunked encoding", errBadResponse, h.status)
		}
		return r, nil
	}
}

// parseHead reads the status line and headers at the start of buf; its size is 0 while
// they are not all in buf. An HTTP/1.0 answer closes the connection unless it says
// keep-alive; an HTTP/1.1 one keeps it unless it says close.
func parseHead(buf []byte) (head, error) {
	h := head{length: -1}
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return h, nil
	}
	lines := bytes.Split(buf[:end], []byte("\r\n"))
	status := bytes.Fields(lines[0])
	if len(status) < 2 || !bytes.HasPrefix(status[0], []byte("HTTP/1.")) {
		return h, fmt.Errorf("%w: status line %q", errBadResponse, lines[0])
	}
	code, err := strconv.Atoi(string(status[1]))
	if err != nil {
		return h, fmt.Errorf("%w: status line %q", errBadResponse, lines[0])
	}
	h.status = code
	sawClose, sawKeepAlive := false, false
	for _, line := range lines[1:] {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return h, fmt.Errorf("%w: header line %q", errBadResponse, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if h.length, err = strconv.Atoi(string(value)); err != nil || h.length < 0 {
				return h, fmt.Errorf("%w: Content-Length %q", errBadResponse, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			h.chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			for token := range bytes.SplitSeq(value, []byte(",")) {
				token = bytes.TrimSpace(token)
				sawClose = sawClose || bytes.EqualFold(token, []byte("close"))
				sawKeepAlive = sawKeepAlive || bytes.EqualFold(token, []byte("keep-alive"))
			}
		}
	}
	h.size = end + 4
	h.closes = sawClose || (string(status[0]) == "HTTP/1.0" && !sawKeepAlive)
	return h, nil
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
		if size > int64(len(buf)-at)-2 { // not all in yet (and no overflow for huge sizes)
			return 0, nil
		}
		at += int(size) + 2
	}
}
