//! Raw sockets and name lookups through std (wasi:sockets underneath).
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

fn report(what: &str, result: io::Result<String>) {
    match result {
        Ok(detail) => println!("{what} => OK {detail}"),
        Err(e) => println!("{what} => ERR {:?} ({e})", e.kind()),
    }
}

/// Argument: the host's TCP and UDP listener, `IP:TCPPORT:UDPPORT`.
pub fn main() {
    let arg = std::env::args().nth(1).expect("IP:TCPPORT:UDPPORT");
    let mut parts = arg.split(':');
    let ip = parts.next().unwrap();
    let tcp: SocketAddr = format!("{ip}:{}", parts.next().unwrap()).parse().unwrap();
    let udp: SocketAddr = format!("{ip}:{}", parts.next().unwrap()).parse().unwrap();
    report("tcp-connect", TcpStream::connect(tcp).map(|s| format!("{:?}", s.peer_addr())));
    report(
        "tcp-connect-timeout",
        TcpStream::connect_timeout(&tcp, Duration::from_secs(2)).map(|_| "connected".into()),
    );
    report("tcp-listen", TcpListener::bind("127.0.0.1:0").map(|l| format!("{:?}", l.local_addr())));
    report("udp-bind", UdpSocket::bind("0.0.0.0:0").map(|s| format!("{:?}", s.local_addr())));
    report(
        "udp-send",
        UdpSocket::bind("0.0.0.0:0").and_then(|s| s.send_to(b"from the task", udp)).map(|n| n.to_string()),
    );
    report("dns-localhost", "localhost:80".to_socket_addrs().map(|a| format!("{:?}", a.collect::<Vec<_>>())));
    report("dns-public", "example.com:443".to_socket_addrs().map(|a| format!("{:?}", a.collect::<Vec<_>>())));
}
