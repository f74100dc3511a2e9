//! `SO_REUSEPORT` listeners: one socket per core and port, balanced by the kernel.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Opens a listening TCP socket on `addr` with `SO_REUSEADDR` and `SO_REUSEPORT`, so every core
/// can bind the same address. `backlog` is the accept queue length of this core's socket.
///
/// The socket is returned as a std listener; the core converts it into its runtime's type.
pub fn reuseport(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        // One address family per listener; configure `[::]` and `0.0.0.0` separately if wanted.
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_listeners_share_a_port() {
        let a = reuseport("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let port = a.local_addr().unwrap();
        let b = reuseport(port, 16).unwrap();
        assert_eq!(b.local_addr().unwrap(), port);
    }

    #[test]
    fn plain_listener_blocks_reuse() {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(reuseport(a.local_addr().unwrap(), 16).is_err());
    }
}
