OPENQASM 3.0;
include "stdgates.inc";
bit[2] meas;
qubit[2] q;
meas[0] = measure q[0];
meas[1] = measure q[1];
