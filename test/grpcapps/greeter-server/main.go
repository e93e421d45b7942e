// Command greeter-server is the gRPC server of cmd/wirescope's
// TestGRPCRecorded: grpc-go serving the Greeter and Echo services whose
// generated code grpc's own examples ship (helloworld, features/proto/echo),
// with answers chosen to put every kind of outcome on the wire. It prints
// "greeter-server: listening on ADDR" to stderr once it accepts connections.
//
// Greeter.SayHello answers "Hello NAME", except for these names:
//
//	""        INVALID_ARGUMENT "name is empty"
//	"missing" NOT_FOUND "no greeting for missing"
//	"relay"   calls Echo.UnaryEcho("sleep") on this same server with a 100 ms
//	          deadline, which expires (that call is reset on the wire), and
//	          answers with its status: DEADLINE_EXCEEDED in the trailers
//
// Echo.UnaryEcho echoes its message, after a second when it is "sleep" (or
// until the call's deadline); Echo.BidirectionalStreamingEcho echoes every
// message; Echo.ServerStreamingEcho and Echo.ClientStreamingEcho are left
// unimplemented (UNIMPLEMENTED). The gzip compressor is registered, so a
// client's gzip-compressed call is answered compressed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // answers gzip-compressed calls compressed
	echo "google.golang.org/grpc/examples/features/proto/echo"
	hello "google.golang.org/grpc/examples/helloworld/helloworld"
	"google.golang.org/grpc/status"
)

type greeter struct {
	hello.UnimplementedGreeterServer
	self echo.EchoClient
}

func (g *greeter) SayHello(ctx context.Context, in *hello.HelloRequest) (*hello.HelloReply, error) {
	switch in.GetName() {
	case "":
		return nil, status.Error(codes.InvalidArgument, "name is empty")
	case "missing":
		return nil, status.Error(codes.NotFound, "no greeting for missing")
	case "relay":
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		r, err := g.self.UnaryEcho(ctx, &echo.EchoRequest{Message: "sleep"})
		if err != nil {
			s := status.Convert(err)
			return nil, status.Errorf(s.Code(), "upstream echo: %s", s.Message())
		}
		return &hello.HelloReply{Message: r.GetMessage()}, nil
	}
	return &hello.HelloReply{Message: "Hello " + in.GetName()}, nil
}

type echoServer struct {
	echo.UnimplementedEchoServer
}

func (echoServer) UnaryEcho(ctx context.Context, in *echo.EchoRequest) (*echo.EchoResponse, error) {
	if in.GetMessage() == "sleep" {
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	return &echo.EchoResponse{Message: in.GetMessage()}, nil
}

func (echoServer) BidirectionalStreamingEcho(stream echo.Echo_BidirectionalStreamingEchoServer) error {
	for {
		in, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&echo.EchoResponse{Message: in.GetMessage()}); err != nil {
			return err
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "address to listen on")
	flag.Parse()
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer()
	hello.RegisterGreeterServer(s, &greeter{self: echo.NewEchoClient(conn)})
	echo.RegisterEchoServer(s, echoServer{})
	fmt.Fprintf(os.Stderr, "greeter-server: listening on %s\n", lis.Addr())
	if err := s.Serve(lis); err != nil {
		log.Fatal(err)
	}
}
