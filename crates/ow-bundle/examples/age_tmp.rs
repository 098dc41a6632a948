use std::io::{Read, Write};
fn main() {
    let size = 256usize << 20;
    let data = vec![5u8; size];
    let id = age::x25519::Identity::generate();
    let r = id.to_public();
    let mut enc = Vec::with_capacity(size + size / 1000 + 1000);
    let e = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
    let mut w = e.wrap_output(&mut enc).unwrap();
    for c in data.chunks(256 << 10) {
        w.write_all(c).unwrap();
    }
    w.finish().unwrap();
    let d = age::Decryptor::new_buffered(&enc[..]).unwrap();
    let mut rd = d
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .unwrap();
    let mut v = vec![0u8; 256 << 10];
    loop {
        let n = rd.read(&mut v).unwrap();
        if n == 0 {
            break;
        }
    }
}
