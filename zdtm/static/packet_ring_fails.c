/*
 * packet_ring_fails: a packet socket with a PACKET_RX_RING mapped into the process
 * is refused by the dump in one line naming the ring (crfail: the task survives
 * unchanged), and afterwards the ring still works: a frame sent on lo for the
 * socket's ethertype shows up in the mapped ring's first frame (TP_STATUS_USER).
 */
#include "zdtmtst.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(0x88b8) };
	struct tpacket_req req = { .tp_block_size = 4096, .tp_block_nr = 2, .tp_frame_size = 2048, .tp_frame_nr = 4 };
	struct pollfd p;
	unsigned char frame[32] = { 0 };
	volatile struct tpacket_hdr *hdr;
	int fd, tx;
	void *ring;

	test_init(argc, argv);
	test_write_text("cr-opts.json", "{\"refuse\": [{\"step\": \"dump\", \"opts\": [], "
			"\"says\": \"a packet socket's PACKET_RX_RING/PACKET_TX_RING (mapped ring) is not restored\"}]}");
	test_lo_up();
	ll.sll_ifindex = (int)if_nametoindex("lo");
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0 || setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)))
		fail("PACKET_RX_RING");
	ring = mmap(NULL, req.tp_block_size * req.tp_block_nr, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ring == MAP_FAILED || bind(fd, (struct sockaddr *)&ll, sizeof(ll)))
		fail("ring mapping, bind");
	hdr = ring;

	test_daemon();
	test_waitsig();

	if (hdr->tp_status != TP_STATUS_KERNEL)
		pr_err("the ring's first frame is no longer the kernel's (status %#lx)", (unsigned long)hdr->tp_status);
	tx = socket(AF_PACKET, SOCK_RAW, 0);
	frame[12] = 0x88;
	frame[13] = 0xb8;
	memcpy(frame + 14, "into the ring", 13);
	if (tx < 0 || sendto(tx, frame, 27, 0, (struct sockaddr *)&ll, sizeof(ll)) != 27)
		pr_err("sending a frame");
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1 || !(hdr->tp_status & TP_STATUS_USER) || hdr->tp_len != 27 ||
	    memcmp((char *)hdr + hdr->tp_mac + 14, "into the ring", 13))
		pr_err("the frame did not arrive in the ring");
	test_result();
	return 0;
}
