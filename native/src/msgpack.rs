//! The few msgpack forms the outbox uses, written as msgspec writes them: every int, string,
//! binary, array and map in its smallest form (so the bytes equal the reference's).

use pyo3::exceptions::PyOverflowError;
use pyo3::PyResult;

pub fn int(out: &mut Vec<u8>, value: i128) -> PyResult<()> {
    if value >= 0 {
        if value < 0x80 {
            out.push(value as u8); // positive fixint
        } else if value <= 0xff {
            out.extend_from_slice(&[0xcc, value as u8]);
        } else if value <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(value as u16).to_be_bytes());
        } else if value <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(value as u32).to_be_bytes());
        } else if value <= u64::MAX as i128 {
            out.push(0xcf);
            out.extend_from_slice(&(value as u64).to_be_bytes());
        } else {
            return Err(PyOverflowError::new_err("can't serialize ints > 2**64 - 1"));
        }
    } else if value >= -32 {
        out.push(value as i8 as u8); // negative fixint
    } else if value >= i8::MIN as i128 {
        out.extend_from_slice(&[0xd0, value as i8 as u8]);
    } else if value >= i16::MIN as i128 {
        out.push(0xd1);
        out.extend_from_slice(&(value as i16).to_be_bytes());
    } else if value >= i32::MIN as i128 {
        out.push(0xd2);
        out.extend_from_slice(&(value as i32).to_be_bytes());
    } else if value >= i64::MIN as i128 {
        out.push(0xd3);
        out.extend_from_slice(&(value as i64).to_be_bytes());
    } else {
        return Err(PyOverflowError::new_err("can't serialize ints < -2**63"));
    }
    Ok(())
}

/// A length after one of three markers: 8, 16 or 32 bits (lengths past 2**32 never occur here).
fn sized(out: &mut Vec<u8>, len: usize, markers: [u8; 3]) {
    if len <= 0xff {
        out.extend_from_slice(&[markers[0], len as u8]);
    } else if len <= 0xffff {
        out.push(markers[1]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(markers[2]);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

pub fn str(out: &mut Vec<u8>, text: &str) {
    let len = text.len();
    if len < 32 {
        out.push(0xa0 | len as u8); // fixstr
    } else {
        sized(out, len, [0xd9, 0xda, 0xdb]);
    }
    out.extend_from_slice(text.as_bytes());
}

/// Python bytes: msgpack bin (there is no fixbin).
pub fn bin(out: &mut Vec<u8>, data: &[u8]) {
    sized(out, data.len(), [0xc4, 0xc5, 0xc6]);
    out.extend_from_slice(data);
}

/// An array header; array16 and array32 have no 8-bit form.
pub fn array(out: &mut Vec<u8>, len: usize) {
    if len < 16 {
        out.push(0x90 | len as u8);
    } else if len <= 0xffff {
        out.push(0xdc);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

pub fn map(out: &mut Vec<u8>, len: usize) {
    if len < 16 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0xde);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdf);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

pub fn str_array(out: &mut Vec<u8>, items: &[String]) {
    array(out, items.len());
    for item in items {
        str(out, item);
    }
}

/// A dict of str -> int, in its order.
pub fn int_map(out: &mut Vec<u8>, items: &[(String, i128)]) -> PyResult<()> {
    map(out, items.len());
    for (name, value) in items {
        str(out, name);
        int(out, *value)?;
    }
    Ok(())
}
