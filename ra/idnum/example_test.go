package idnum_test

import (
	"fmt"
	"time"

	"github.com/sanadpki/sanad/ra/idnum"
)

// ExampleFor shows the RA's use: find the country, check the identifier,
// keep the canonical form, branch on the code of a refusal.
func ExampleFor() {
	pk, err := idnum.For("PK")
	if err != nil {
		panic(err)
	}
	id, err := pk.Person("42101-1234567-1", time.Time{})
	fmt.Println(id, err)

	kz, _ := idnum.For("KZ")
	_, err = kz.Person("791028302728", time.Date(1979, 10, 27, 0, 0, 0, 0, time.UTC))
	fmt.Println(err)
	// Output:
	// 4210112345671 <nil>
	// invalid national identifier (KZ person): the birth date in the IIN (digits 1-6) is not the birth date given [birth-date]
}
