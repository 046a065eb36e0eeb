package wire

// ServerInfoFile is the name of the file in the data dir where `berth serve` writes its
// ServerInfo for the CLI.
const ServerInfoFile = "server.json"

// ServerInfo is the content of <data-dir>/server.json: how the CLI finds and
// authenticates to the running server.
type ServerInfo struct {
	URL   string `json:"url"`
	Token string `json:"token"`
	PID   int    `json:"pid"`
}
