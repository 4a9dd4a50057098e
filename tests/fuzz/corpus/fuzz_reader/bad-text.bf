hello, this is not a tensor stream
