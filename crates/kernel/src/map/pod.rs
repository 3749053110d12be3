//! Plain-old-data: types a map key or value can be read into and written
//! from as raw bytes.

/// A type whose every bit pattern is a valid value and which has no padding,
/// so it converts to and from its bytes losslessly (as `bytemuck::Pod`).
///
/// # Safety
/// Implement only for `#[repr(C)]` (or transparent) types made of `Pod`
/// fields with no padding bytes between or after them.
pub unsafe trait Pod: Copy + 'static {}

macro_rules! pod {
    ($($t:ty),*) => {$(
        // SAFETY: primitive integers and floats: no padding, any bits valid.
        unsafe impl Pod for $t {}
    )*};
}
pod!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64, usize, isize);

// SAFETY: an array of padding-free elements has no padding.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

/// The bytes of a value.
pub fn bytes_of<T: Pod>(v: &T) -> &[u8] {
    // SAFETY: `T: Pod` has no padding, so all `size_of::<T>()` bytes are
    // initialised; the slice borrows `v`.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// A value from exactly `size_of::<T>()` bytes (any alignment); `None` for
/// another length.
pub fn from_bytes<T: Pod>(b: &[u8]) -> Option<T> {
    if b.len() != std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: the length matches, any bit pattern is a valid `T`, and the
    // unaligned read copies the bytes out.
    Some(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<T>()) })
}

/// A value from the first `size_of::<T>()` bytes of `b`, zero-filled when
/// `b` is shorter: a record whose trailing variable-length part was cut.
pub fn from_prefix<T: Pod>(b: &[u8]) -> T {
    let mut full = vec![0u8; std::mem::size_of::<T>()];
    let n = b.len().min(full.len());
    full[..n].copy_from_slice(&b[..n]);
    from_bytes(&full).expect("sized to T")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let v: [u32; 3] = [1, 2, 0xdead_beef];
        let b = bytes_of(&v).to_vec();
        assert_eq!(b.len(), 12);
        assert_eq!(from_bytes::<[u32; 3]>(&b), Some(v));
        assert_eq!(from_bytes::<u64>(&b), None);
        // Unaligned input.
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(bytes_of(&7u64));
        assert_eq!(from_bytes::<u64>(&shifted[1..]), Some(7));
        // A short prefix is zero-filled.
        assert_eq!(from_prefix::<[u16; 3]>(&[1, 0, 2]), [1, 2, 0]);
    }
}
