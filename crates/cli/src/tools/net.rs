//! Socket addresses as the network tools print them.

use std::net::{Ipv4Addr, Ipv6Addr};

/// `AF_INET`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;

/// The address of `family` in `bytes` (network order, IPv4 in the first
/// four bytes), or `None` for another family or too few bytes.
pub fn ip_addr(family: u16, bytes: &[u8]) -> Option<std::net::IpAddr> {
    match family {
        AF_INET => {
            let b: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
            Some(Ipv4Addr::from(b).into())
        }
        AF_INET6 => {
            let b: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
            Some(Ipv6Addr::from(b).into())
        }
        _ => None,
    }
}

/// The address as text (`127.0.0.1`, `::1`), `?` when the family is unknown.
pub fn addr_text(family: u16, bytes: &[u8]) -> String {
    ip_addr(family, bytes).map_or_else(|| "?".to_string(), |a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_families_print_in_their_usual_form() {
        assert_eq!(addr_text(AF_INET, &[127, 0, 0, 1, 9, 9]), "127.0.0.1");
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(addr_text(AF_INET6, &v6), "::1");
        assert_eq!(addr_text(1, &v6), "?");
        assert_eq!(addr_text(AF_INET6, &v6[..8]), "?");
    }
}
