import FuzzDriver

runFuzzer { data, size in fuzzHTTPHead(data, size) }
