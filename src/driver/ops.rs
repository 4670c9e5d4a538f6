//! What a ring operation is, packed into its 64-bit user data.
//!
//! ```text
//!  63            32 31              8 7      0
//!  ┌──────────────┬─────────────────┬────────┐
//!  │ generation   │ connection slot │ op     │
//!  └──────────────┴─────────────────┴────────┘
//! ```
//!
//! The generation is the slot's reuse count, so a completion that arrives after its
//! connection's slot was given to a new connection is recognised and ignored.

/// The kinds of ring operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// The listener's multishot accept.
    Accept = 1,
    /// A connection's receive with buffer selection.
    Recv = 2,
    /// A connection's send.
    Send = 3,
    /// A cancel request (its own completion carries nothing).
    Cancel = 4,
    /// The driver's periodic tick while it waits in its ring (a multishot timeout).
    Tick = 5,
    /// Posted into this ring by another shard (`MSG_RING`) after it sent this shard a mesh
    /// message: glommio must get a turn to deliver it.
    Poke = 6,
    /// The sender's own completion of a poke (bookkeeping).
    Poked = 7,
}

/// Packed user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UserData(pub(crate) u64);

impl UserData {
    /// An operation of connection `slot` (fewer than 2^24 slots), generation `gen`.
    pub(crate) fn conn(op: Op, slot: u32, gen: u32) -> UserData {
        debug_assert!(slot < 1 << 24);
        UserData((gen as u64) << 32 | (slot as u64) << 8 | op as u64)
    }

    /// An operation that belongs to no connection.
    pub(crate) fn misc(op: Op) -> UserData {
        UserData(op as u64)
    }

    /// The operation kind, if known.
    pub(crate) fn op(self) -> Option<Op> {
        match self.0 & 0xff {
            1 => Some(Op::Accept),
            2 => Some(Op::Recv),
            3 => Some(Op::Send),
            4 => Some(Op::Cancel),
            5 => Some(Op::Tick),
            6 => Some(Op::Poke),
            7 => Some(Op::Poked),
            _ => None,
        }
    }

    /// The connection slot.
    pub(crate) fn slot(self) -> u32 {
        ((self.0 >> 8) & 0xff_ffff) as u32
    }

    /// The slot's generation.
    pub(crate) fn gen(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let u = UserData::conn(Op::Send, 0xab_cdef, 0xdead_beef);
        assert_eq!(u.op(), Some(Op::Send));
        assert_eq!(u.slot(), 0xab_cdef);
        assert_eq!(u.gen(), 0xdead_beef);
        assert_eq!(UserData::misc(Op::Accept).op(), Some(Op::Accept));
        assert_eq!(UserData(0).op(), None);
    }
}
