package relay

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/relay-dev/relay/sockets"
)

// BindError is Start's error when the node cannot bind its ROUTER where
// WithBindAddress and WithPortRange say: the address is not one of this
// host's, no interface has that name, every port of the range is taken, or
// the port needs privileges. Start returns it at once: a restart could not
// change it. Err is why (errors.Is(err, syscall.EADDRINUSE) holds for a
// port in use, syscall.EADDRNOTAVAIL for an address of another host).
// The message names the options and the fix; `node` renders them as the
// flags that set them (--bind, --ports).
type BindError struct {
	Address          string // WithBindAddress's value
	PortMin, PortMax int    // WithPortRange's
	Err              error
	addrs            string // this host's interfaces and addresses, for the fix
}

// Error says what could not be bound, why, and what to change.
func (e *BindError) Error() string {
	var ports string
	if e.PortMin == e.PortMax {
		ports = fmt.Sprintf("port %d (WithPortRange %d-%d)", e.PortMin, e.PortMin, e.PortMax)
	} else {
		ports = fmt.Sprintf("WithPortRange %d-%d", e.PortMin, e.PortMax)
	}
	give := "give one of this host's addresses or interfaces (" + e.addrs + "), or 0.0.0.0 with WithAdvertise"
	var sb *sockets.BindError
	tries := 0
	if errors.As(e.Err, &sb) {
		tries = sb.Tries
	}
	var what, fix string
	switch {
	case errors.Is(e.Err, errIPv6):
		what = fmt.Sprintf("WithBindAddress %s is an IPv6 address, and relay binds IPv4 only", e.Address)
		fix = give
	case errors.Is(e.Err, errNoSuchName), errors.Is(e.Err, syscall.ENODEV):
		what = fmt.Sprintf("WithBindAddress %s is neither an IP address nor an interface of this host", e.Address)
		fix = give
	case errors.Is(e.Err, errNoIPv4):
		what = fmt.Sprintf("WithBindAddress %s names an interface without an IPv4 address (relay binds IPv4 only)", e.Address)
		fix = give
	case errors.Is(e.Err, syscall.EADDRNOTAVAIL):
		what = fmt.Sprintf("WithBindAddress %s is not an address of this host (%v)", e.Address, syscall.EADDRNOTAVAIL)
		fix = give
	case errors.Is(e.Err, syscall.EADDRINUSE) && tries > 1:
		what = fmt.Sprintf("no free port in %s on WithBindAddress %s: the %d tried are all in use", ports, e.Address, tries)
		fix = "stop what holds them, or give WithPortRange a range with free ports"
	case errors.Is(e.Err, syscall.EADDRINUSE):
		what = fmt.Sprintf("%s on WithBindAddress %s is in use (%v)", ports, e.Address, syscall.EADDRINUSE)
		fix = "stop what holds it, or give WithPortRange a free port"
	case errors.Is(e.Err, syscall.EACCES):
		what = fmt.Sprintf("%s on WithBindAddress %s needs privileges (%v)", ports, e.Address, syscall.EACCES)
		fix = "give WithPortRange ports from 1024 up"
	case strings.HasPrefix(e.Address, "ipc://"):
		what = fmt.Sprintf("WithBindAddress %s: %v", e.Address, e.Err)
		fix = "give ipc://DIR with DIR an existing directory this process may write in"
	default:
		what = fmt.Sprintf("WithBindAddress %s, %s: %v", e.Address, ports, e.Err)
		fix = "check WithBindAddress (" + e.addrs + ") and WithPortRange"
	}
	return "relay: start: cannot bind: " + what + ". Fix: " + fix
}

// Unwrap returns why.
func (e *BindError) Unwrap() error { return e.Err }

// newBindError is the BindError of o's bind address and ports.
func newBindError(o *options, err error) *BindError {
	return &BindError{Address: o.bindAddress, PortMin: o.portMin, PortMax: o.portMax, Err: err, addrs: hostAddresses()}
}

var (
	errIPv6       = errors.New("an IPv6 address")
	errNoSuchName = errors.New("no such address or interface")
	errNoIPv4     = errors.New("interface has no IPv4 address")
)

// bindHost is what the node's ROUTER binds for WithBindAddress addr: an
// IPv4 address, a wildcard or "ipc://DIR" as it is; an interface name
// ("eth0", "lo") the interface's first IPv4 address, which the node then
// also advertises (unless WithAdvertise says otherwise). A name that is
// neither, or an IPv6 address, is an error.
func bindHost(addr string) (string, error) {
	if strings.HasPrefix(addr, "ipc://") || sockets.Wildcard(addr) && !strings.Contains(addr, ":") {
		return addr, nil
	}
	if ip := net.ParseIP(strings.Trim(addr, "[]")); ip != nil {
		if ip.To4() == nil {
			return "", errIPv6
		}
		return addr, nil
	}
	ifi, err := net.InterfaceByName(addr)
	if err != nil {
		return "", errNoSuchName
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return "", fmt.Errorf("interface %s: %w", addr, err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String(), nil
		}
	}
	return "", errNoIPv4
}

// hostAddresses lists this host's interfaces with their IPv4 addresses,
// "lo 127.0.0.1, eth0 10.0.0.5", for an error's fix.
func hostAddresses() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return "see `ip address`"
	}
	var out []string
	for _, ifi := range ifs {
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				out = append(out, ifi.Name+" "+ipn.IP.String())
			}
		}
	}
	if len(out) == 0 {
		return "see `ip address`"
	}
	return strings.Join(out, ", ")
}
