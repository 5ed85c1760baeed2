//! The benchmark (`sensors-sim bench`); filled in below.
