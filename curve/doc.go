// Package curve holds relay's CURVE keys: Z85 text, key pairs, key files
// (in the format of czmq's zcert, so that certificates made by other
// ZeroMQ tools can be read), allow-lists of public keys, and the key a
// registration carries. It has no I/O beyond reading and writing files and
// does not import ZeroMQ; package sockets applies the keys to sockets.
//
//	kp, _ := curve.Generate()
//	pub, sec, _ := curve.WriteKeyPair("keys/alpha", "alpha", kp, false) // keys/alpha.pub, keys/alpha.key (0600)
//	kp, _ = curve.LoadKeyPair(sec)              // refuses a file others can read
//	allow, _ := curve.LoadAllowList("keys/")    // every public certificate of a directory
//	name, ok := allow.Name(kp.Public)
//
// Everything here is safe for concurrent use: an AllowList is immutable
// once loaded (a new one replaces it on rotation).
package curve
