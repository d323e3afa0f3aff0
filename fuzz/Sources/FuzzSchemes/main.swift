import FuzzDriver

runFuzzer { data, size in fuzzSchemes(data, size) }
