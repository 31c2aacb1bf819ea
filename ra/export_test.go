package ra

import "github.com/sanadpki/sanad/internal/store"

// GroupOf is the group commit s's transactions go through.
func GroupOf(s *Service) *store.Group { return s.group }
