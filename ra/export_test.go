package ra

import (
	"context"
	"time"

	"github.com/sanadpki/sanad/internal/store"
)

// GroupOf is the group commit s's transactions go through.
func GroupOf(s *Service) *store.Group { return s.group }

// Replayed is s.replayed, for a refusal: rate-limited, or another.
func Replayed(s *Service, ctx context.Context, key string, requestHash []byte, limited bool) (store.Enrollment, bool, error) {
	err := error(refuse("invalid-request", "not a limit"))
	if limited {
		err = rateLimited(time.Minute, "too many enrollments for this identifier")
	}
	return s.replayed(ctx, key, requestHash, err)
}
