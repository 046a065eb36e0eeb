package main

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		size    int // 0: incomplete, -1: all of in
		status  int
		closes  bool
		wantErr string
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", -1, 200, false, ""},
		{"body not all in", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", 0, 200, false, ""},
		{"head not all in", "HTTP/1.1 200 OK\r\nContent-Len", 0, 0, false, ""},
		{"chunked with trailer", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2;x=1\r\nok\r\n0\r\nT: v\r\n\r\n", -1, 200, false, ""},
		{"chunked, last chunk missing", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n", 0, 200, false, ""},
		{"no body for 204", "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", -1, 204, true, ""},
		{"status 424", "HTTP/1.1 424 Failed Dependency\r\nContent-Length: 0\r\n\r\n", -1, 424, false, ""},
		{"interim 103 then 200", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", -1, 200, false, ""},
		{"interim 100, final not in yet", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Le", 0, 0, false, ""},
		{"close in a token list", "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n", -1, 200, true, ""},
		{"HTTP/1.0 closes by default", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", -1, 200, true, ""},
		{"HTTP/1.0 with keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", -1, 200, false, ""},
		{"huge chunk size waits", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\nab", 0, 200, false, ""},
		{"huge Content-Length waits", "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\nab", 0, 200, false, ""},
		{"not http", "SSH-2.0\r\n\r\n", 0, 0, false, "status line"},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, 200, false, "chunk size"},
		{"no length", "HTTP/1.1 200 OK\r\n\r\nok", 0, 200, false, "neither Content-Length nor chunked"},
	}
	for _, tt := range tests {
		r, err := parseResponse([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if tt.size < 0 {
			tt.size = len(tt.in)
		}
		if err != nil || r.size != tt.size || r.status != tt.status || r.closes != tt.closes {
			t.Errorf("%s: got %+v, %v; want size %d status %d closes %v", tt.name, r, err, tt.size, tt.status, tt.closes)
		}
	}
}

func TestBuildRequest(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:8080/endpoints/e/score?x=1")
	got := string(buildRequest(u, []byte(`{"a":1}`), "K"))
	want := "POST /endpoints/e/score?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n" +
		"Authorization: Bearer K\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
