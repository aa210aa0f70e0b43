//! Raw wasi:sockets calls through the `wasi` crate, below std (whose socket support
//! depends on the toolchain): TCP connect and listen, UDP send, name lookups.
use wasi::sockets::instance_network::instance_network;
use wasi::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Network};
use wasi::sockets::udp::OutgoingDatagram;
use wasi::sockets::{ip_name_lookup, tcp_create_socket, udp_create_socket};

fn v4(address: (u8, u8, u8, u8), port: u16) -> IpSocketAddress {
    IpSocketAddress::Ipv4(Ipv4SocketAddress { port, address })
}

fn report(what: &str, result: Result<String, ErrorCode>) {
    match result {
        Ok(detail) => println!("{what} => OK {detail}"),
        Err(code) => println!("{what} => ERR {}", code.name()),
    }
}

fn lookup(network: &Network, name: &str) -> Result<String, ErrorCode> {
    let stream = ip_name_lookup::resolve_addresses(network, name)?;
    let mut found = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(address)) => found.push(format!("{address:?}")),
            Ok(None) => return Ok(found.join(",")),
            Err(ErrorCode::WouldBlock) => stream.subscribe().block(),
            Err(code) => return Err(code),
        }
    }
}

/// Argument: the host's TCP and UDP listener, `IP:TCPPORT:UDPPORT` (IPv4).
fn main() {
    let arg = std::env::args().nth(1).expect("IP:TCPPORT:UDPPORT");
    let parts: Vec<&str> = arg.split(':').collect();
    let octets: Vec<u8> = parts[0].split('.').map(|o| o.parse().unwrap()).collect();
    let ip = (octets[0], octets[1], octets[2], octets[3]);
    let (tcp_port, udp_port): (u16, u16) = (parts[1].parse().unwrap(), parts[2].parse().unwrap());
    let network = instance_network();

    report("tcp-connect", (|| {
        let socket = tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4)?;
        socket.start_connect(&network, v4(ip, tcp_port))?;
        socket.subscribe().block();
        socket.finish_connect().map(|_| "connected".to_string())
    })());
    report("tcp-listen", (|| {
        let socket = tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4)?;
        socket.start_bind(&network, v4((127, 0, 0, 1), 0))?;
        socket.subscribe().block();
        socket.finish_bind()?;
        socket.start_listen()?;
        socket.subscribe().block();
        socket.finish_listen().map(|_| "listening".to_string())
    })());
    report("udp-send", (|| {
        let socket = udp_create_socket::create_udp_socket(IpAddressFamily::Ipv4)?;
        socket.start_bind(&network, v4((0, 0, 0, 0), 0))?;
        socket.subscribe().block();
        socket.finish_bind()?;
        let (_incoming, outgoing) = socket.stream(None)?;
        outgoing.subscribe().block();
        outgoing.check_send()?;
        let datagram = OutgoingDatagram { data: b"from the task".to_vec(), remote_address: Some(v4(ip, udp_port)) };
        outgoing.send(&[datagram]).map(|n| format!("sent {n}"))
    })());
    report("dns-localhost", lookup(&network, "localhost"));
}
