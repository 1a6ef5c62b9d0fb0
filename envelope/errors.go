package envelope

import "errors"

// Errors returned by this package. They are wrapped with the facts (offset,
// field name, sizes); test for them with errors.Is.
var (
	// ErrTruncated means the header frame ended before a field it announced.
	ErrTruncated = errors.New("envelope: truncated header")
	// ErrVersion means the header's version byte is not Version.
	ErrVersion = errors.New("envelope: unsupported version")
	// ErrKind means the header's kind is not a known Kind.
	ErrKind = errors.New("envelope: invalid kind")
	// ErrFieldTooLong means a header field is longer than MaxFieldLen.
	ErrFieldTooLong = errors.New("envelope: field too long")
	// ErrTrailing means bytes follow the last field of the header.
	ErrTrailing = errors.New("envelope: trailing bytes after header")
	// ErrFrames means a message has the wrong number of frames.
	ErrFrames = errors.New("envelope: wrong number of frames")
)
