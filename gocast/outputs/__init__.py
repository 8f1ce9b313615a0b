"""Mount subscribers that make something: the HLS/LL-HLS packager and its AAC transcoder."""
