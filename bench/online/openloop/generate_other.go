//go:build !linux

package main

import (
	"context"
	"errors"
)

// generate needs epoll and timerfd: the generator runs on Linux only.
func generate(context.Context, config) (summary, error) {
	return summary{}, errors.New("openloop runs on Linux only (it drives its sockets with epoll and timerfd)")
}
