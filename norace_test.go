//go:build !race

package relay_test

// raceEnabled: the tests run with -race.
const raceEnabled = false
