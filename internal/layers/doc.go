// Package layers holds only a test that keeps the import graph flowing one way.
package layers
