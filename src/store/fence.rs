//! Fencing tokens for partition ownership: the store refuses a batch from an owner whose lease
//! has moved on, so a paused old owner cannot write after a new one has.

/// A partition's lease as its owner holds it: the partition number and the lease's revision in
/// the key-value bucket (revisions only grow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    pub partition: u32,
    pub revision: u64,
}
