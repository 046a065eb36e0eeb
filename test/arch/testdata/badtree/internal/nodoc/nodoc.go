package nodoc

// Answer is documented, but the package is not.
const Answer = 42
