package segstore

// WriteIndexV2 rewrites the index of the segment at segPath as an index
// written before flows counted their payload (WSFLOWS 0x02) would be.
func WriteIndexV2(segPath string) error {
	g, err := readIndex(indexPath(segPath))
	if err != nil {
		return err
	}
	return writeIndexAs(indexPath(segPath), g, indexMagicV2)
}
