package tls

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// Decryption uses Go's primitives only: crypto/aes, crypto/cipher (GCM,
// CBC), golang.org/x/crypto/chacha20poly1305, crypto/hmac and crypto/hkdf.
// What wirescope writes is the TLS framing around them: the TLS 1.2 PRF
// (RFC 5246 §5) and key block, TLS 1.3's HKDF-Expand-Label (RFC 8446
// §7.1), nonces, additional data, CBC padding and MAC checks.

// bulk is how a suite protects records.
type bulk uint8

const (
	bulkNone   bulk = iota
	bulkGCM         // AES-GCM
	bulkChaCha      // ChaCha20-Poly1305
	bulkCBC         // AES-CBC with HMAC
)

// suite is a cipher suite wirescope decrypts.
type suite struct {
	bulk   bulk
	keyLen int
	// macHash is the record MAC's hash (CBC suites); prfHash the PRF's or
	// HKDF's.
	macHash func() hash.Hash
	prfHash func() hash.Hash
	tls13   bool
}

var (
	sha256New = sha256.New
	sha384New = sha512.New384
	sha1New   = sha1.New
)

// suites are those decrypted, by IANA number. The others are named in
// suiteNames and say why they are not (unsupportedWhy).
var suites = map[uint16]suite{
	// TLS 1.3
	0x1301: {bulk: bulkGCM, keyLen: 16, prfHash: sha256New, tls13: true},
	0x1302: {bulk: bulkGCM, keyLen: 32, prfHash: sha384New, tls13: true},
	0x1303: {bulk: bulkChaCha, keyLen: 32, prfHash: sha256New, tls13: true},
	// TLS 1.2 AES-GCM: ECDHE-RSA, ECDHE-ECDSA, RSA, DHE-RSA
	0xc02f: {bulk: bulkGCM, keyLen: 16, prfHash: sha256New},
	0xc030: {bulk: bulkGCM, keyLen: 32, prfHash: sha384New},
	0xc02b: {bulk: bulkGCM, keyLen: 16, prfHash: sha256New},
	0xc02c: {bulk: bulkGCM, keyLen: 32, prfHash: sha384New},
	0x009c: {bulk: bulkGCM, keyLen: 16, prfHash: sha256New},
	0x009d: {bulk: bulkGCM, keyLen: 32, prfHash: sha384New},
	0x009e: {bulk: bulkGCM, keyLen: 16, prfHash: sha256New},
	0x009f: {bulk: bulkGCM, keyLen: 32, prfHash: sha384New},
	// TLS 1.2 ChaCha20-Poly1305 (RFC 7905)
	0xcca8: {bulk: bulkChaCha, keyLen: 32, prfHash: sha256New},
	0xcca9: {bulk: bulkChaCha, keyLen: 32, prfHash: sha256New},
	0xccaa: {bulk: bulkChaCha, keyLen: 32, prfHash: sha256New},
	// TLS 1.2 AES-CBC with HMAC-SHA1, -SHA256, -SHA384
	0xc013: {bulk: bulkCBC, keyLen: 16, macHash: sha1New, prfHash: sha256New},
	0xc014: {bulk: bulkCBC, keyLen: 32, macHash: sha1New, prfHash: sha256New},
	0xc009: {bulk: bulkCBC, keyLen: 16, macHash: sha1New, prfHash: sha256New},
	0xc00a: {bulk: bulkCBC, keyLen: 32, macHash: sha1New, prfHash: sha256New},
	0x002f: {bulk: bulkCBC, keyLen: 16, macHash: sha1New, prfHash: sha256New},
	0x0035: {bulk: bulkCBC, keyLen: 32, macHash: sha1New, prfHash: sha256New},
	0x0033: {bulk: bulkCBC, keyLen: 16, macHash: sha1New, prfHash: sha256New},
	0x0039: {bulk: bulkCBC, keyLen: 32, macHash: sha1New, prfHash: sha256New},
	0x003c: {bulk: bulkCBC, keyLen: 16, macHash: sha256New, prfHash: sha256New},
	0x003d: {bulk: bulkCBC, keyLen: 32, macHash: sha256New, prfHash: sha256New},
	0x0067: {bulk: bulkCBC, keyLen: 16, macHash: sha256New, prfHash: sha256New},
	0x006b: {bulk: bulkCBC, keyLen: 32, macHash: sha256New, prfHash: sha256New},
	0xc027: {bulk: bulkCBC, keyLen: 16, macHash: sha256New, prfHash: sha256New},
	0xc028: {bulk: bulkCBC, keyLen: 32, macHash: sha384New, prfHash: sha384New},
	0xc023: {bulk: bulkCBC, keyLen: 16, macHash: sha256New, prfHash: sha256New},
	0xc024: {bulk: bulkCBC, keyLen: 32, macHash: sha384New, prfHash: sha384New},
}

// unsupportedWhy says why a suite is not decrypted.
func unsupportedWhy(id uint16, version uint16) string {
	if version != 0 && version < 0x0303 {
		return "TLS 1.0 and 1.1 are not decrypted (their PRF and implicit CBC IVs are not implemented)"
	}
	switch {
	case id == 0x1304 || id == 0x1305 || (id >= 0xc09c && id <= 0xc0af):
		return "AES-CCM suites are not decrypted: neither Go's standard library nor golang.org/x/crypto has CCM"
	case (id >= 0xc03c && id <= 0xc071) || (id >= 0xc072 && id <= 0xc09b) || (id >= 0x0041 && id <= 0x0046) || (id >= 0x0084 && id <= 0x0089) || (id >= 0x00ba && id <= 0x00c5):
		return "ARIA and Camellia suites are not decrypted: Go has no implementation"
	case id == 0x000a || id == 0x0016 || id == 0xc012 || id == 0xc008:
		return "3DES suites are not decrypted (obsolete, disabled by current libraries)"
	case id == 0x0004 || id == 0x0005 || id == 0xc011 || id == 0xc007:
		return "RC4 suites are not decrypted (prohibited by RFC 7465)"
	case id <= 0x0002 || id == 0x003b:
		return "NULL suites carry no encryption; not read"
	}
	return "cipher suite not supported for decryption"
}

// keyCipher is one direction's record protection.
type keyCipher struct {
	s    suite
	aead cipher.AEAD
	iv   []byte // GCM: the 4-byte fixed IV (1.2) or 12-byte IV (1.3); ChaCha: 12 bytes
	// CBC
	block  cipher.Block
	macKey []byte
	etm    bool // encrypt_then_mac (RFC 7366)
	seq    uint64
	// secret is the TLS 1.3 traffic secret, for key updates.
	secret []byte
	nonce  [12]byte
	ad     [13]byte
}

var errBadMAC = errors.New("bad record MAC")

func newAEAD(b bulk, key []byte) (cipher.AEAD, error) {
	if b == bulkChaCha {
		return chacha20poly1305.New(key)
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

// prf12 is the TLS 1.2 PRF (RFC 5246 §5): P_hash(secret, label + seed).
func prf12(h func() hash.Hash, secret []byte, label string, seed []byte, n int) []byte {
	ls := make([]byte, 0, len(label)+len(seed))
	ls = append(append(ls, label...), seed...)
	mac := hmac.New(h, secret)
	out := make([]byte, 0, n+64)
	mac.Write(ls)
	a := mac.Sum(nil)
	for len(out) < n {
		mac.Reset()
		mac.Write(a)
		mac.Write(ls)
		out = mac.Sum(out)
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(a[:0])
	}
	return out[:n]
}

// keys12 derives both directions' ciphers of a TLS 1.2 session from its
// master secret (RFC 5246 §6.3).
func keys12(s suite, master, clientRandom, serverRandom []byte, etm bool) (client, server *keyCipher, err error) {
	var macLen, ivLen int
	switch s.bulk {
	case bulkGCM:
		ivLen = 4
	case bulkChaCha:
		ivLen = 12
	case bulkCBC:
		macLen = s.macHash().Size()
		ivLen = 16
	}
	seed := append(append([]byte{}, serverRandom...), clientRandom...)
	kb := prf12(s.prfHash, master, "key expansion", seed, 2*(macLen+s.keyLen+ivLen))
	take := func(n int) []byte { b := kb[:n:n]; kb = kb[n:]; return b }
	cmac, smac := take(macLen), take(macLen)
	ckey, skey := take(s.keyLen), take(s.keyLen)
	civ, siv := take(ivLen), take(ivLen)
	mk := func(key, iv, mac []byte) (*keyCipher, error) {
		k := &keyCipher{s: s, iv: iv, macKey: mac, etm: etm}
		var err error
		if s.bulk == bulkCBC {
			k.block, err = aes.NewCipher(key)
		} else {
			k.aead, err = newAEAD(s.bulk, key)
		}
		return k, err
	}
	if client, err = mk(ckey, civ, cmac); err != nil {
		return nil, nil, err
	}
	server, err = mk(skey, siv, smac)
	return client, server, err
}

// expandLabel is TLS 1.3's HKDF-Expand-Label (RFC 8446 §7.1).
func expandLabel(h func() hash.Hash, secret []byte, label string, n int) []byte {
	info := make([]byte, 0, 4+6+len(label))
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, 0)
	out, err := hkdf.Expand(h, secret, string(info), n)
	if err != nil {
		panic("tls: HKDF-Expand-Label: " + err.Error()) // n is at most 48
	}
	return out
}

// keys13 returns the cipher of a TLS 1.3 traffic secret.
func keys13(s suite, secret []byte) (*keyCipher, error) {
	aead, err := newAEAD(s.bulk, expandLabel(s.prfHash, secret, "key", s.keyLen))
	if err != nil {
		return nil, err
	}
	return &keyCipher{s: s, aead: aead, iv: expandLabel(s.prfHash, secret, "iv", 12), secret: secret}, nil
}

// update applies a TLS 1.3 KeyUpdate: the next traffic secret.
func (k *keyCipher) update() error {
	next, err := keys13(k.s, expandLabel(k.s.prfHash, k.secret, "traffic upd", k.s.prfHash().Size()))
	if err != nil {
		return err
	}
	*k = *next
	return nil
}

// open decrypts the record (header hdr, body the fragment after it) at
// sequence number seq into dst, returning the plaintext and, for TLS 1.3,
// the inner content type (else typ).
func (k *keyCipher) open(dst []byte, typ byte, hdr, body []byte, seq uint64) ([]byte, byte, error) {
	switch {
	case k.s.tls13:
		copy(k.nonce[:], k.iv)
		for i := 0; i < 8; i++ {
			k.nonce[4+i] ^= byte(seq >> (56 - 8*i))
		}
		pt, err := k.aead.Open(dst, k.nonce[:], body, hdr)
		if err != nil {
			return nil, 0, errBadMAC
		}
		// Strip the zero padding; the last non-zero byte is the type.
		i := len(pt) - 1
		for i >= 0 && pt[i] == 0 {
			i--
		}
		if i < 0 {
			return nil, 0, errors.New("record with no content type")
		}
		return pt[:i], pt[i], nil
	case k.s.bulk == bulkGCM:
		if len(body) < 8+16 {
			return nil, 0, errors.New("record shorter than its nonce and tag")
		}
		copy(k.nonce[:4], k.iv)
		copy(k.nonce[4:], body[:8])
		k.additional(typ, hdr, seq, len(body)-8-16)
		pt, err := k.aead.Open(dst, k.nonce[:], body[8:], k.ad[:])
		if err != nil {
			return nil, 0, errBadMAC
		}
		return pt, typ, nil
	case k.s.bulk == bulkChaCha:
		if len(body) < 16 {
			return nil, 0, errors.New("record shorter than its tag")
		}
		copy(k.nonce[:], k.iv)
		for i := 0; i < 8; i++ {
			k.nonce[4+i] ^= byte(seq >> (56 - 8*i))
		}
		k.additional(typ, hdr, seq, len(body)-16)
		pt, err := k.aead.Open(dst, k.nonce[:], body, k.ad[:])
		if err != nil {
			return nil, 0, errBadMAC
		}
		return pt, typ, nil
	}
	return k.openCBC(dst, typ, hdr, body, seq)
}

// additional fills the TLS 1.2 AEAD additional data: sequence number,
// type, version and the plaintext's length.
func (k *keyCipher) additional(typ byte, hdr []byte, seq uint64, n int) {
	binary.BigEndian.PutUint64(k.ad[:8], seq)
	k.ad[8] = typ
	k.ad[9], k.ad[10] = hdr[1], hdr[2]
	binary.BigEndian.PutUint16(k.ad[11:], uint16(n))
}

// openCBC decrypts a TLS 1.2 CBC record: an explicit IV, then the
// ciphertext of plaintext, MAC and padding (MAC over the ciphertext
// instead with encrypt_then_mac).
func (k *keyCipher) openCBC(dst []byte, typ byte, hdr, body []byte, seq uint64) ([]byte, byte, error) {
	bs := k.block.BlockSize()
	macLen := len(k.macKey)
	if k.s.macHash != nil {
		macLen = k.s.macHash().Size()
	}
	mac := hmac.New(k.s.macHash, k.macKey)
	if k.etm {
		if len(body) < bs+bs+macLen {
			return nil, 0, errors.New("record shorter than its IV, a block and its MAC")
		}
		ct, tag := body[:len(body)-macLen], body[len(body)-macLen:]
		k.additional(typ, hdr, seq, len(ct))
		mac.Write(k.ad[:])
		mac.Write(ct)
		if !hmac.Equal(mac.Sum(nil), tag) {
			return nil, 0, errBadMAC
		}
		body = ct
	}
	if len(body) < 2*bs || len(body)%bs != 0 {
		return nil, 0, errors.New("CBC record not a whole number of blocks")
	}
	iv, ct := body[:bs], body[bs:]
	out := append(dst[:0], ct...)
	cipher.NewCBCDecrypter(k.block, iv).CryptBlocks(out, out)
	pad := int(out[len(out)-1])
	if pad+1 > len(out) {
		return nil, 0, errBadMAC
	}
	for _, b := range out[len(out)-1-pad:] {
		if int(b) != pad {
			return nil, 0, errBadMAC
		}
	}
	out = out[:len(out)-1-pad]
	if k.etm {
		return out, typ, nil
	}
	if len(out) < macLen {
		return nil, 0, errBadMAC
	}
	pt, tag := out[:len(out)-macLen], out[len(out)-macLen:]
	k.additional(typ, hdr, seq, len(pt))
	mac.Write(k.ad[:])
	mac.Write(pt)
	if subtle.ConstantTimeCompare(mac.Sum(nil), tag) != 1 {
		return nil, 0, errBadMAC
	}
	return pt, typ, nil
}
