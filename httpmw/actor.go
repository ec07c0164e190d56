package httpmw

import (
	"context"
	"sync"
)

// actorSlot is filled by whoever authenticates the request, deeper in the
// chain than Observe, whose access-log line is written after the handler
// returns. A context value set deeper is not visible to Observe, so it
// hands down this slot instead.
type actorSlot struct {
	mu   sync.Mutex
	name string
}

const actorKey ctxKey = clientIPKey + 1

// SetActor records who made the request (a user name; "" for anonymous)
// for the access log's actor field. Outside Observe it does nothing.
func SetActor(ctx context.Context, name string) {
	if s, ok := ctx.Value(actorKey).(*actorSlot); ok {
		s.mu.Lock()
		s.name = name
		s.mu.Unlock()
	}
}

func withActorSlot(ctx context.Context) (context.Context, *actorSlot) {
	s := &actorSlot{}
	return context.WithValue(ctx, actorKey, s), s
}

func (s *actorSlot) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.name
}
