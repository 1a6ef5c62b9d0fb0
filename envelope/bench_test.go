package envelope

import "testing"

func BenchmarkAppend(b *testing.B) {
	h := sampleHeader()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(h.size()))
	for b.Loop() {
		buf = h.Append(buf[:0])
	}
}

func BenchmarkEncode(b *testing.B) {
	h := sampleHeader()
	b.ReportAllocs()
	b.SetBytes(int64(h.size()))
	for b.Loop() {
		if _, err := h.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	frame := mustEncode(b, sampleHeader())
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewMsgID(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = NewMsgID()
		}
	})
}

func BenchmarkEncodeBody(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeBody(5); err != nil {
			b.Fatal(err)
		}
	}
}
