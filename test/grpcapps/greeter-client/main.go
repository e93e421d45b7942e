// Command greeter-client makes the calls of cmd/wirescope's TestGRPCRecorded
// to greeter-server, one after the other on one connection, and checks each
// outcome; it prints a line per call and exits 1 when one is not what the
// server is meant to answer:
//
//	Greeter.SayHello("wirescope 1..3")           OK
//	Greeter.SayHello("gzip"), gzip-compressed     OK (compressed both ways)
//	Greeter.SayHello("missing")                   NOT_FOUND
//	Greeter.SayHello("")                          INVALID_ARGUMENT
//	Greeter.SayHello("relay")                     DEADLINE_EXCEEDED (from the server)
//	Echo.UnaryEcho("sleep"), 200 ms deadline      DEADLINE_EXCEEDED (the client's
//	                                              deadline: the stream is reset)
//	Echo.ServerStreamingEcho                      UNIMPLEMENTED
//	Echo.BidirectionalStreamingEcho, 4 messages,
//	gzip-compressed                               OK, 4 answers
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	echo "google.golang.org/grpc/examples/features/proto/echo"
	hello "google.golang.org/grpc/examples/helloworld/helloworld"
	"google.golang.org/grpc/status"
)

var failed bool

// check reports a call's outcome and remembers a wrong one.
func check(what string, err error, want codes.Code) {
	got := status.Code(err)
	fmt.Fprintf(os.Stderr, "greeter-client: %s: %s %q\n", what, got, status.Convert(err).Message())
	if got != want {
		fmt.Fprintf(os.Stderr, "greeter-client: %s: want %s\n", what, want)
		failed = true
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "the server's address")
	flag.Parse()
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	greeter, ec := hello.NewGreeterClient(conn), echo.NewEchoClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for i := 1; i <= 3; i++ {
		_, err := greeter.SayHello(ctx, &hello.HelloRequest{Name: fmt.Sprintf("wirescope %d", i)})
		check("SayHello", err, codes.OK)
	}
	_, err = greeter.SayHello(ctx, &hello.HelloRequest{Name: "gzip"}, grpc.UseCompressor(gzip.Name))
	check("SayHello gzip", err, codes.OK)
	_, err = greeter.SayHello(ctx, &hello.HelloRequest{Name: "missing"})
	check("SayHello missing", err, codes.NotFound)
	_, err = greeter.SayHello(ctx, &hello.HelloRequest{})
	check("SayHello empty", err, codes.InvalidArgument)
	_, err = greeter.SayHello(ctx, &hello.HelloRequest{Name: "relay"})
	check("SayHello relay", err, codes.DeadlineExceeded)

	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = ec.UnaryEcho(short, &echo.EchoRequest{Message: "sleep"})
	cancelShort()
	check("UnaryEcho sleep", err, codes.DeadlineExceeded)

	ss, err := ec.ServerStreamingEcho(ctx, &echo.EchoRequest{Message: "stream"})
	if err == nil {
		_, err = ss.Recv()
	}
	check("ServerStreamingEcho", err, codes.Unimplemented)

	bidi, err := ec.BidirectionalStreamingEcho(ctx, grpc.UseCompressor(gzip.Name))
	if err == nil {
		for i := 1; i <= 4 && err == nil; i++ {
			err = bidi.Send(&echo.EchoRequest{Message: fmt.Sprintf("bidi %d: %s", i, "wirescope wirescope wirescope")})
		}
		if err == nil {
			err = bidi.CloseSend()
		}
		n := 0
		for err == nil {
			_, err = bidi.Recv()
			if err == nil {
				n++
			}
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
		if err == nil && n != 4 {
			err = fmt.Errorf("%d answers, want 4", n)
		}
	}
	check("BidirectionalStreamingEcho gzip", err, codes.OK)
	if failed {
		os.Exit(1)
	}
}
