// Package synth forwards to capture/capturetest, where the synthetic packet
// builders now live; it remains only until the tests that import it move.
package synth

import "github.com/wirescope/wirescope/capture/capturetest"

// Conn is capturetest.Conn.
type Conn = capturetest.Conn

// Step is capturetest.Step.
const Step = capturetest.Step

// Forwarded constructors.
var (
	NewConn  = capturetest.NewConn
	Datagram = capturetest.Datagram
	Frame    = capturetest.Frame
)
