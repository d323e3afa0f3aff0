import FuzzDriver

runFuzzer { data, size in fuzzTimestamp(data, size) }
