//! Walking a map's keys with `next_key`.

use super::{MapError, RawMap};

/// Iterates over a map's keys with `next_key`.
pub struct Keys<'a, M: RawMap + ?Sized> {
    map: &'a M,
    last: Option<Vec<u8>>,
    done: bool,
}

impl<M: RawMap + ?Sized> Iterator for Keys<'_, M> {
    type Item = Result<Vec<u8>, MapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.map.next_key(self.last.as_deref()) {
            Ok(Some(k)) => {
                self.last = Some(k.clone());
                Some(Ok(k))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// All keys of a map, in the map's iteration order.
pub fn keys<M: RawMap + ?Sized>(map: &M) -> Keys<'_, M> {
    Keys {
        map,
        last: None,
        done: false,
    }
}
