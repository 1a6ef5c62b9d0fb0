//go:build race

package relay_test

// raceEnabled: the tests run with -race, whose goroutine wake-ups cost
// several times more.
const raceEnabled = true
