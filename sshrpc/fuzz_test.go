package sshrpc

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzReadFrame: whatever arrives on a stream, the decoder returns a frame or an error,
// never panics, and a frame it accepts encodes back to the same bytes.
func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, Frame{Kind: KindRequest, Type: 3, ID: 42, Payload: []byte("get k")}))
	f.Add(AppendFrame(nil, Frame{Kind: KindOneWay}))
	f.Add(AppendFrame(nil, Frame{Kind: kindHello, Payload: helloPayload()}))
	f.Add([]byte{0, 0, 0, 3, 1, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for i := 0; i < 16; i++ {
			fr, err := ReadFrame(r, 1<<16)
			if err != nil {
				return
			}
			if len(fr.Payload) > 1<<16 {
				t.Fatalf("accepted a payload of %d bytes over the limit", len(fr.Payload))
			}
			again, err := ReadFrame(bufio.NewReader(bytes.NewReader(AppendFrame(nil, fr))), 1<<16)
			if err != nil || again.Kind != fr.Kind || again.Type != fr.Type || again.ID != fr.ID || !bytes.Equal(again.Payload, fr.Payload) {
				t.Fatalf("frame does not survive re-encoding: %v", err)
			}
		}
	})
}

// FuzzHandshake: a peer's first bytes, whatever they are, end in a version or an error.
func FuzzHandshake(f *testing.F) {
	f.Add(AppendFrame(nil, Frame{Kind: kindHello, Payload: helloPayload()}))
	f.Add(AppendFrame(nil, Frame{Kind: KindError, Payload: []byte("no server running")}))
	f.Add(AppendFrame(nil, Frame{Kind: kindHello, Payload: append([]byte(helloMagic), 0, 9, 0, 1)}))
	f.Add([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		v, err := handshake(bufio.NewReader(bytes.NewReader(data)), &out)
		if err == nil && (v < minProtocolVersion || v > ProtocolVersion) {
			t.Fatalf("agreed on version %d outside %d..%d", v, minProtocolVersion, ProtocolVersion)
		}
		if !bytes.HasPrefix(out.Bytes(), AppendFrame(nil, Frame{Kind: kindHello, Payload: helloPayload()})) {
			t.Fatal("our hello was not sent first")
		}
	})
}
