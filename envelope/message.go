package envelope

import "fmt"

// Parse splits a message received on a DEALER, [header, body], and decodes
// its header. Any other number of frames is ErrFrames. The returned body
// aliases frames[1]; the header does not alias frames[0].
func Parse(frames [][]byte) (Header, []byte, error) {
	if len(frames) != 2 {
		return Header{}, nil, fmt.Errorf("%w: %d, want 2 [header, body]", ErrFrames, len(frames))
	}
	h, err := Decode(frames[0])
	if err != nil {
		return Header{}, nil, err
	}
	return h, frames[1], nil
}

// ParseRouted splits a message received on a ROUTER, [routing-id, header,
// body], and decodes its header. Any other number of frames is ErrFrames.
// The returned id and body alias frames[0] and frames[2].
func ParseRouted(frames [][]byte) (id []byte, h Header, body []byte, err error) {
	if len(frames) != 3 {
		return nil, Header{}, nil, fmt.Errorf("%w: %d, want 3 [routing-id, header, body]", ErrFrames, len(frames))
	}
	h, err = Decode(frames[1])
	if err != nil {
		return nil, Header{}, nil, err
	}
	return frames[0], h, frames[2], nil
}
