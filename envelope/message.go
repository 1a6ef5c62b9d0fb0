package envelope

import "fmt"

// Payload returns the payload frame of a message received on a DEALER:
// exactly one frame, holding one or more records. Any other number of
// frames is ErrFrames.
func Payload(frames [][]byte) ([]byte, error) {
	if len(frames) != 1 {
		return nil, fmt.Errorf("%w: %d, want 1 [payload]", ErrFrames, len(frames))
	}
	return frames[0], nil
}

// ParseRouted splits a message received on a ROUTER, [routing-id,
// payload]. Any other number of frames is ErrFrames. The results alias
// frames.
func ParseRouted(frames [][]byte) (id, payload []byte, err error) {
	if len(frames) != 2 {
		return nil, nil, fmt.Errorf("%w: %d, want 2 [routing-id, payload]", ErrFrames, len(frames))
	}
	return frames[0], frames[1], nil
}
