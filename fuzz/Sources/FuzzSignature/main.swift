import FuzzDriver

runFuzzer { data, size in fuzzSignature(data, size) }
