package libvirt

import (
	"context"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// LifecycleEvent is a domain lifecycle event (virDomainEventType) with the host time it
// arrived.
type LifecycleEvent struct {
	Domain string
	// Type is "defined", "undefined", "started", "suspended", "resumed", "stopped",
	// "shutdown", "pmsuspended" or "crashed"; Detail is libvirt's detail code for it (for
	// "suspended" and "stopped", 1 and 3 mean "because of a migration").
	Type     string
	Detail   int32
	Received time.Time
}

var eventTypes = []string{"defined", "undefined", "started", "suspended", "resumed", "stopped", "shutdown", "pmsuspended", "crashed"}

// WatchLifecycle calls f with every lifecycle event of the daemon's domains until ctx ends
// or the connection is lost; f runs on the event reader and must not block.
func (c *Conn) WatchLifecycle(ctx context.Context, f func(LifecycleEvent)) error {
	var ch <-chan golibvirt.DomainEventLifecycleMsg
	err := c.call(ctx, 0, "subscribe to lifecycle events", func() error {
		var err error
		ch, err = c.l.LifecycleEvents(ctx)
		return err
	})
	if err != nil {
		return err
	}
	go func() {
		for ev := range ch {
			t := "unknown"
			if ev.Event >= 0 && int(ev.Event) < len(eventTypes) {
				t = eventTypes[ev.Event]
			}
			f(LifecycleEvent{Domain: ev.Dom.Name, Type: t, Detail: ev.Detail, Received: time.Now()})
		}
	}()
	return nil
}
