//! Outgoing HTTP through wasi:http (the `wasi` crate): GET http://AUTHORITY/probe.
use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, OutgoingRequest, Scheme};

fn main() {
    let authority = std::env::args().nth(1).expect("AUTHORITY");
    let request = OutgoingRequest::new(Fields::new());
    request.set_scheme(Some(&Scheme::Http)).unwrap();
    request.set_authority(Some(&authority)).unwrap();
    request.set_path_with_query(Some("/probe-from-task")).unwrap();
    match outgoing_handler::handle(request, None) {
        Ok(future) => {
            future.subscribe().block();
            match future.get() {
                Some(Ok(Ok(response))) => println!("http => OK status {}", response.status()),
                Some(Ok(Err(e))) => println!("http => ERR {e:?}"),
                other => println!("http => ERR {other:?}"),
            }
        }
        Err(e) => println!("http => ERR {e:?}"),
    }
}
