package api

import "errors"

// ErrNotSent marks an error of a call that happened before its request could have left
// this host (the connection was refused, the stream was closed before the frame was
// queued): nothing can have been carried out, so a write may be reported as not applied
// (11, 12) rather than unknown (2). Transports wrap it (errors.Is); an error without it
// is taken as "the request may have arrived".
var ErrNotSent = errors.New("not sent")
