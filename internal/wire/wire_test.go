package wire

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestDecoder(t *testing.T) {
	b := binary.AppendUvarint(nil, 300)
	b = AppendString(b, "host1")
	b = AppendBytes(b, nil)
	b = append(b, 7)
	b = binary.BigEndian.AppendUint32(b, 0xdeadbeef)
	d := Decoder{B: b}
	if v, s, e, c, u := d.Uvarint(), d.String(16), d.Bytes(16), d.Byte(), d.Uint32(); v != 300 || s != "host1" || e != nil || c != 7 || u != 0xdeadbeef {
		t.Fatalf("got %d %q %v %d %x", v, s, e, c, u)
	}
	d.End()
	if d.Err != nil {
		t.Fatal(d.Err)
	}
	for cut := 0; cut < len(b); cut++ {
		d := Decoder{B: b[:cut]}
		d.Uvarint()
		d.String(16)
		d.Bytes(16)
		d.Byte()
		d.Uint32()
		if !errors.Is(d.Err, ErrShort) {
			t.Fatalf("cut at %d: %v", cut, d.Err)
		}
	}
	d = Decoder{B: AppendString(nil, "toolong")}
	if d.String(3); d.Err == nil {
		t.Fatal("a field over its limit was read")
	}
}
