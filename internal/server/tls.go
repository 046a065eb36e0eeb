package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files of the self-signed certificate --tls keeps in <data-dir>/tls/.
const (
	tlsDirName   = "tls"
	selfCertName = "cert.pem"
	selfKeyName  = "key.pem"
)

// urls returns the URL the CLI connects to (server.json: a wildcard listen becomes
// 127.0.0.1) and the public base URL of scoring_uri (--public-url; else, for a wildcard
// listen, this machine's hostname; else the listen address).
func urls(ln net.Addr, scheme, public, hostname string) (local, pub string) {
	host, port, err := net.SplitHostPort(ln.String())
	if err != nil {
		return scheme + "://" + ln.String(), scheme + "://" + ln.String()
	}
	ip := net.ParseIP(host)
	wildcard := ip != nil && ip.IsUnspecified()
	if wildcard {
		host = "127.0.0.1"
	}
	local = scheme + "://" + net.JoinHostPort(host, port)
	switch {
	case public != "":
		return local, public
	case wildcard && hostname != "":
		return local, scheme + "://" + net.JoinHostPort(hostname, port)
	}
	return local, local
}

// isLoopback reports whether the listener only reaches this machine.
func isLoopback(ln net.Addr) bool {
	tcp, ok := ln.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// serverTLS returns the TLS configuration of --tls-cert/--tls-key, of --tls (a
// self-signed certificate for hosts, kept in dataDir/tls and reused while it covers
// them), or nil for plain HTTP.
func serverTLS(cfg *Config, dataDir string, hosts []string) (*tls.Config, string, error) {
	certFile, keyFile := cfg.TLSCert, cfg.TLSKey
	if cfg.TLS {
		dir := filepath.Join(dataDir, tlsDirName)
		certFile, keyFile = filepath.Join(dir, selfCertName), filepath.Join(dir, selfKeyName)
		if !certCovers(certFile, keyFile, hosts) {
			if err := selfSign(dir, certFile, keyFile, hosts); err != nil {
				return nil, "", fmt.Errorf("--tls: %w", err)
			}
		}
	}
	if certFile == "" {
		return nil, "", nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("load the TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, certFile, nil
}

// certCovers reports whether the pair at certFile/keyFile loads, is valid for another
// day and names every host.
func certCovers(certFile, keyFile string, hosts []string) bool {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return false
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || time.Now().Add(24*time.Hour).After(leaf.NotAfter) {
		return false
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// selfSign writes a new ECDSA P-256 self-signed certificate for hosts, valid for a
// year; the key file is 0600.
func selfSign(dir, certFile, keyFile string, hosts []string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "berth serve", Organization: []string{"Berth (self-signed)"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so that clients can trust it as its own root
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(keyFile, "PRIVATE KEY", keyDER); err != nil {
		return err
	}
	return writePEM(certFile, "CERTIFICATE", der)
}

func writePEM(path, typ string, der []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// certHosts lists the names the --tls certificate must cover: loopback, the listen
// address unless it is a wildcard, this machine's hostname and the --public-url host.
func certHosts(ln net.Addr, hostname, public string) []string {
	hosts := []string{"127.0.0.1", "::1", "localhost"}
	if host, _, err := net.SplitHostPort(ln.String()); err == nil {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() && !ip.IsLoopback() {
			hosts = append(hosts, host)
		}
	}
	if hostname != "" {
		hosts = append(hosts, hostname)
	}
	if u, err := url.Parse(public); err == nil && u.Hostname() != "" {
		hosts = append(hosts, u.Hostname())
	}
	return hosts
}

// publicURL parses --public-url: "" or an http(s) URL with a host and no query; the
// trailing slash is dropped.
func publicURL(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("want an http:// or https:// URL with a host, such as https://berth.example.com")
	}
	return u.Scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/"), nil
}
