"""An independent Noise_IK_25519_ChaChaPoly_BLAKE2b responder (PyPI `noiseprotocol`) for the
interop test: reads the initiator's first message (hex) on stdin, prints the payload it carried,
the second message, and one transport message, each as a hex line."""
import sys

from noise.connection import Keypair, NoiseConnection

static_private = bytes.fromhex(sys.argv[1])
prologue = bytes.fromhex(sys.argv[2])
reply = sys.argv[3].encode()

responder = NoiseConnection.from_name(b"Noise_IK_25519_ChaChaPoly_BLAKE2b")
responder.set_as_responder()
responder.set_prologue(prologue)
responder.set_keypair_from_private_bytes(Keypair.STATIC, static_private)
responder.start_handshake()
payload = responder.read_message(bytes.fromhex(sys.stdin.readline().strip()))
print(payload.hex())
print(responder.write_message(reply).hex())
print(responder.encrypt("Поздрави от хъба, pozdrowienia z huba".encode()).hex())
