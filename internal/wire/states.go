package wire

// Provisioning states of endpoints and deployments, as Azure names them
// (the provisioning_state field).
const (
	StateCreating  = "Creating"
	StateUpdating  = "Updating"
	StateDeleting  = "Deleting"
	StateSucceeded = "Succeeded"
	StateFailed    = "Failed"
)
