// Package diag owns Berth's catalogue of documented error codes and the one error type
// that carries a code, a message, the target it is about and nested details.
package diag

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Code is a documented Azure Machine Learning error code.
type Code string

// Documented codes Berth produces.
const (
	BadArgument                Code = "BadArgument"
	ResourceNotReady           Code = "ResourceNotReady"
	ResourceNotFound           Code = "ResourceNotFound"
	OperationCanceled          Code = "OperationCanceled"
	InternalServerError        Code = "InternalServerError"
	UserScriptImportError      Code = "UserScriptImportError"
	UserScriptInitFailed       Code = "UserScriptInitFailed"
	UserScriptFunctionNotFound Code = "UserScriptFunctionNotFound"
	EndpointNotFound           Code = "EndpointNotFound"
	EndpointAlreadyExists      Code = "EndpointAlreadyExists"
	DeploymentNotFound         Code = "DeploymentNotFound"
	DeploymentAlreadyExists    Code = "DeploymentAlreadyExists"
	Unauthorized               Code = "Unauthorized"
	// AuthorizationFailed is a valid credential that may not do what it asked (HTTP
	// 403), as Azure Resource Manager names it.
	AuthorizationFailed        Code = "AuthorizationFailed"
	Conflict                   Code = "Conflict"
	DeploymentCrashLoopBackOff Code = "DeploymentCrashLoopBackOff"
	// RequestEntityTooLarge is a request body over the control plane's limit (HTTP 413).
	RequestEntityTooLarge Code = "RequestEntityTooLarge"
	// UserError is a batch job that failed because of its script or its input, as Azure
	// reports such jobs.
	UserError Code = "UserError"
	// JobNotFound is a batch job name that does not exist.
	JobNotFound Code = "JobNotFound"
	// ComputeNotFound is a compute target that does not exist.
	ComputeNotFound Code = "ComputeNotFound"
)

// Messages Azure's batch jobs log for their causes, reproduced word for word.
const (
	// BatchRunFailed is a job whose init() or run() raised until it failed.
	BatchRunFailed = "User program failed with Exception: Run failed, please check logs for details. You can check logs/readme.txt for the layout of logs."
	// BatchNoObjects is a mini-batch whose files were all unreadable or unsupported.
	BatchNoObjects = "ValueError: No objects to concatenate"
	// BatchNoSucceededItem is a run() that returned nothing for its mini-batch.
	BatchNoSucceededItem = "There is no succeeded mini batch item returned from run(). Please check 'response: run()' in https://aka.ms/batch-inference-documentation."
	// BatchUnsupportedInput is an input a batch endpoint cannot take.
	BatchUnsupportedInput = "Data set node [code] references parameter dataset_param which doesn't have a specified value or a default value."
	// NoValidDeploymentMessage is a scoring request or a batch invocation with no
	// deployment to route to.
	NoValidDeploymentMessage = "No valid deployments to route to. Please check that the endpoint has at least one deployment with positive weight values or use a deployment specific header to route."
	// BatchAudience is a token issued for another audience than https://ml.azure.com.
	BatchAudience = "Audiences in JWT are not allowed"
)

// Error is an error with a documented code. It marshals to the control-plane JSON shape
// {"code","message","target","details"} (wrapped in {"error": ...} on the wire).
type Error struct {
	Code    Code     `json:"code"`
	Message string   `json:"message"`
	Target  string   `json:"target,omitempty"`
	Details []*Error `json:"details,omitempty"`
}

// Error returns the message, prefixed by the code.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	b.WriteString(": ")
	b.WriteString(e.Message)
	for _, d := range e.Details {
		if d.Message != "" && !strings.Contains(e.Message, d.Message) {
			b.WriteString("\n  - ")
			if d.Target != "" {
				b.WriteString(d.Target)
				b.WriteString(": ")
			}
			b.WriteString(d.Message)
		}
	}
	return b.String()
}

// New returns an Error with a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// As returns the *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// HTTPStatus is the status the control plane answers with for the code.
func (c Code) HTTPStatus() int {
	switch c {
	case BadArgument, InvalidDeploymentSpec, SecretsInjectionError, UserError:
		return http.StatusBadRequest
	case Unauthorized:
		return http.StatusUnauthorized
	case AuthorizationFailed:
		return http.StatusForbidden
	case ResourceNotFound, EndpointNotFound, DeploymentNotFound, JobNotFound, ComputeNotFound:
		return http.StatusNotFound
	case RequestEntityTooLarge:
		return http.StatusRequestEntityTooLarge
	case EndpointAlreadyExists, DeploymentAlreadyExists, Conflict, OperationCanceled, OutOfQuota:
		return http.StatusConflict
	default:
		return http.StatusInternalServerError
	}
}
