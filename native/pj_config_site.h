/*
 * Compile-time pjproject limits for sip-ai-agent. Copied to pjlib/include/pj/config_site.h by
 * scripts/build-pjproject.sh; changing it changes the build stamp and forces a rebuild.
 */
#ifndef SIP_AI_AGENT_PJ_CONFIG_SITE_H
#define SIP_AI_AGENT_PJ_CONFIG_SITE_H

/* No video anywhere. */
#define PJMEDIA_HAS_VIDEO 0

/* At least 256 concurrent calls: each call takes one conference slot for its stream and one
 * for our PcmPort, plus a few for players. */
#define PJSUA_MAX_CALLS 512
#define PJSUA_MAX_CONF_PORTS 1100
#define PJSUA_MAX_ACC 16
#define PJSUA_MAX_PLAYERS 64

/* Every call needs an RTP and an RTCP socket; the default of 64 handles stops at ~32 calls
 * (PJ_ETOOMANY "Unable to create media transport"). */
#define PJ_IOQUEUE_MAX_HANDLES 2048

/* Plain epoll. Since 2.17 the epoll ioqueue defaults to EPOLLEXCLUSIVE (or EPOLLONESHOT), which
 * protects several threads polling one ioqueue but re-arms every descriptor after each event:
 * two epoll_ctl calls (DEL + ADD) per RTP packet read, about a third of the SIP loop thread at 200
 * calls. Each ioqueue here is polled by exactly one thread (our loop thread; in the pjsua test app,
 * one thread per ioqueue), so the re-arming buys nothing. */
#define PJ_IOQUEUE_DEFAULT_EPOLL_FLAGS 0

/* Timer heap and transaction table sized for hundreds of dialogs. */
#define PJSIP_MAX_TSX_COUNT (16 * 1024 - 1)
#define PJSIP_MAX_DIALOG_COUNT (16 * 1024 - 1)
#define PJ_TIMER_HEAP_CAPACITY 4096

/* Large SIP messages (long SDP with many codecs, custom headers). */
#define PJSIP_MAX_PKT_LEN 8000

/* IPv6 transports are optional at runtime. */
#define PJ_HAS_IPV6 1

#endif
