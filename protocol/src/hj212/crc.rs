//! The HJ 212-2017 CRC of docs/domain.md, HJ 212 (not CRC-16/MODBUS).

/// CRC16 over the data segment as HJ 212-2017 specifies it.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc = (crc >> 8) ^ u16::from(b);
        for _ in 0..8 {
            let lsb = crc & 1;
            crc >>= 1;
            if lsb != 0 {
                crc ^= 0xA001;
            }
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_vectors_from_domain_md() {
        assert_eq!(crc16(b"123456789"), 0x2F80);
        let seg = "QN=20170102150000000;ST=39;CN=2011;PW=123456;MN=410108HJ0000000000000001;Flag=4;CP=&&DataTime=20170102150000;a34004-Rtd=245.0,a34004-Flag=N;a34002-Rtd=312.0,a34002-Flag=N;a34001-Rtd=401.0,a34001-Flag=N;LA-Rtd=62.5,LA-Flag=N;a01001-Rtd=-1.5,a01001-Flag=N;a01002-Rtd=78.0,a01002-Flag=N;a01006-Rtd=102.35,a01006-Flag=N;a01007-Rtd=1.2,a01007-Flag=N;a01008-Rtd=45,a01008-Flag=N&&";
        assert_eq!(seg.len(), 374);
        assert_eq!(crc16(seg.as_bytes()), 0x06C0);
    }
}
